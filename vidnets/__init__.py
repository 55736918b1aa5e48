"""vidnets: video action recognition with the six networks of its founding survey.

C3D, Two-Stream ConvNets, TSN, P3D, T3D and Res3D, plus decoding, optical flow, the papers'
training and testing recipes, feature extraction, fusion and benchmarks.
"""

__version__ = "0.1.0"
