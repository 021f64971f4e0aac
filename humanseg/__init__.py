"""humanseg: site-specific human segmentation for fixed surveillance cameras."""

__version__ = "0.1.0"
