"""bpy-free logic of the MaSkel add-on (HTTP client, camera maths, rig mapping), tested with plain pytest.

Nothing in this package may import bpy, mathutils, numpy or maskel: it runs inside Blender's own Python.
"""
