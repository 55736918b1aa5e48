"""Optical flow for the temporal streams: extraction, storage, stacking, warped flow, visualisation.

::

    video ──extract (OpenCV TV-L1 | Farneback | DIS; optional backward, camera-warped)──►
          store: flow_root/<video id>/flow_{x,y}_00001.jpg …, meta.json (uint8 in [-bound, bound])
          ──FlowFrames (float displacements)──► stacking (stack | trajectory | bidirectional,
          mean subtraction) ──augment (flip negates x, resize scales vectors)──► datasets

Modules: ``extract``, ``store``, ``stacking``, ``augment``, ``warp``, ``datasets``, ``visualize``,
``commands`` (``vidnets flow extract|show``).
"""
