"""Copying datasets and layouts to sites, proven complete by a checksummed manifest."""

from .local import MARKER, Manifest, copy_tree, make_manifest, verify_tree

__all__ = ["MARKER", "Manifest", "copy_tree", "make_manifest", "verify_tree"]
