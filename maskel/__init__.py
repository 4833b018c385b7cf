"""MaSkel: silhouette mask -> whole-body X-ray (arXiv 2404.09000), trained on synthetic phantom pairs."""

from maskel.errors import MaskelError

__version__ = "0.1.0"

__all__ = ["MaskelError", "__version__"]
