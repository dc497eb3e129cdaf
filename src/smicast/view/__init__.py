"""`smicast view`: the terminal viewer.

`model` (hosts, GPUs, history rings, alerts) and `sources` (local collector,
recording, remote `/events`) are plain Python; only `app` and its screens
import Textual, so the model is tested, and reused by other views, without a terminal.
"""
