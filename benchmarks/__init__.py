"""Speed of gmgan against the reference implementations that users would otherwise pick.

`python -m benchmarks.run` runs the CPU suite; `python -m benchmarks.gpu_profile` the CUDA profile.
"""
