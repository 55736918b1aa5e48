"""Deployment: trained checkpoints as exported networks (``vidnets export``) and as an HTTP service
with a web page (``vidnets serve``).

:mod:`vidnets.deploy.contract` (``model.json``), :mod:`vidnets.deploy.export` (ONNX, ``torch.export``,
TorchScript), :mod:`vidnets.deploy.runtime` (scoring a video file with a checkpoint or an export),
:mod:`vidnets.deploy.serve` (the FastAPI application; needs ``pip install vidnets[serve]``).
"""
