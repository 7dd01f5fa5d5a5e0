"""Clearance: release governance for regulated software."""

from clearance.errors import Error

__all__ = ["Error", "__version__"]
__version__ = "0.1.0"
