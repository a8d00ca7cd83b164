"""The Lab: WGANs and a plain GAN trained live on 2-D points, with what the papers claim made visible.

toy (datasets), nets (MLPs), measures (exact W1, modes, the parallel lines' distances), session
(one run), workspace (a visitor's three runs), render (pictures), lines (claim 1), recorded
(replays). Importing this package trains and loads nothing.
"""
