"""Clothing and hair names: whole words, so that "Bradley" is a body and "Bra_01" is not (bpy-free)."""

from __future__ import annotations

import re
from collections.abc import Iterable

CLOTHING_WORDS = frozenset((
    "cloth", "clothes", "clothing", "shirt", "tshirt", "pant", "trouser", "jean", "short", "skirt", "dress",
    "jacket", "coat", "hood", "hoodie", "sweater", "shoe", "boot", "sneaker", "sock", "glove", "hat", "cap",
    "helmet", "mask", "glass", "sunglass", "belt", "bag", "hair", "eyebrow", "eyelash", "beard", "scarf",
    "vest", "suit", "casualsuit", "worksuit", "underwear", "bra", "ponytail", "braid",
))  # fmt: skip
"""Whole words (singular; a trailing "s"/"es" is ignored) that mark a mesh as clothing or hair."""

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def name_words(name: str) -> list[str]:
    """The words of an object or material name, lower case: "Female_Casualsuit01" -> female, casualsuit;
    "TShirt.001" -> t, shirt; "myHairCap" -> my, hair, cap (digits and punctuation separate words)."""
    return [w.lower() for w in _WORD.findall(name)]


def _is_clothing_word(word: str) -> bool:
    return word in CLOTHING_WORDS or any(word.endswith(e) and word[: -len(e)] in CLOTHING_WORDS for e in ("s", "es"))


def is_clothing_name(names: Iterable[str]) -> bool:
    """Whether any of ``names`` (an object's and its materials' names) has a clothing or hair word."""
    return any(_is_clothing_word(w) for n in names for w in name_words(n))
