"""Datasets, transforms, the canonical framing and the pose map."""
