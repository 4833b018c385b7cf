"""MaSkel: silhouette mask -> whole-body X-ray (arXiv 2404.09000), trained on synthetic phantom pairs."""

__version__ = "0.1.0"


class MaskelError(Exception):
    """An error caused by the user's input or environment, reported as one line (never a traceback)."""
