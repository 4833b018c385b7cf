"""MaSkel's diffusion parts, as in the paper: an unconditional DDPM over X-rays that augments a
small real dataset (``ddpm.py``, ``augment.py`` = ``maskel augment``), and a few-step
residual-shifting super-resolution conditioned on the low-resolution X-ray and the full-resolution
mask (``sr.py``). Both are MONAI ``DiffusionModelUNet`` networks; MONAI is imported only here
(about 2.4 s), never by the server's or ``maskel generate``'s default path.
"""
