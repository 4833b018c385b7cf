"""Synthetic paired data outside Blender: posable body, bones, cameras, silhouettes, DRRs, datasets."""
