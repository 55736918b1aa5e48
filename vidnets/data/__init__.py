"""Video data: decoding, dataset formats, per-paper sampling, clip transforms, synthetic data.

Data flow (one direction)::

    annotations ──load_annotations──► [VideoRecord(path, label, ...)]
                                           │  metadata (frames, fps, size, codec) from a
                                           │  per-file cache keyed by path + size + mtime
                                           ▼
    VideoDataset[i]: sampler(num_frames, rng) ──► SampledIndices (V views, S segments, L frames)
                     decode only those frames (sorted, seek)  ──► uint8 (N, H, W, 3) RGB
                     transform (one crop shared by all frames of a view; flow-aware flips)
                     ──► float tensor: 3D (C, T, H, W) · TSN (K, C·L, H, W) · 2D (C, H, W)
                                       test mode: (V, ...) views stacked in front

Stable interface (used by vidnets.engine and vidnets.flow)
---------------------------------------------------------
``vidnets.data.datasets``
    ``VideoRecord(path: str, label: int, num_frames: int | None = None, fps: float | None = None,
    task: int = 0)`` — one video (a file, or a folder of raw frames).

    ``load_annotations(layout, root, *, split=1, subset="train", annotations=None)
    -> (records, class_names)`` for layouts ``"ucf101"`` (classInd.txt + trainlist0N/testlist0N),
    ``"hmdb51"`` (``*_test_splitN.txt``, 1 = train, 2 = test, 0 = unused), ``"kinetics"``
    (``label,youtube_id,time_start,time_end,split`` or ``path,label`` CSV), ``"folder"`` (one
    sub-folder per class) and ``"rawframes"`` (one frame folder per video, class sub-folders).
    ``root`` is the video folder; ``annotations`` the split-file folder or CSV (default: ``root``).

    ``VideoDataset(records, sampler, transform, *, on_error="skip", backend="pyav", cache=None)``.
    ``dataset[i]`` returns ``{"clip": Tensor, "label": int, "index": int, "path": str}``; a video
    that had to be looped (too short for the sampler) also has ``"looped": "<n> frames, shorter than one clip"``. A bad video
    (missing, empty, truncated, not a video) returns ``{"error": str, "path": str, "index": int}``
    instead of raising (``on_error="raise"`` raises).

    ``collate_skip_bad(items) -> {"clip": Tensor, "label": LongTensor, "index": LongTensor,
    "skipped": ["<path>: <reason>: <detail>"], "skipped_paths": [paths], "errors": [messages],
    "looped": ["<path>: looped: <n> frames, shorter than one clip"], "looped_paths": [paths]}``
    (reasons: ``SKIP_REASONS`` — missing, empty, truncated, undecodable, crop larger than frame) (+ ``"task"`` LongTensor when
    records carry a task id). Error items are dropped; when every item of a batch
    failed, ``clip`` is an empty tensor of shape ``(0,)`` and ``label``/``index`` are empty: check
    ``batch["label"].numel()`` before the forward pass. Because the names travel inside the
    batches, the counts are right with any number of DataLoader workers.

    ``EpochReport`` — ``report.update(batch)`` per batch, ``report.format()`` at the end of an
    epoch lists the skipped and looped files by name.

``vidnets.data.presets``
    ``build_dataset(recipe, records, *, train, **overrides) -> VideoDataset`` for ``"c3d"``,
    ``"res3d"``, ``"p3d"``, ``"t3d"``, ``"two_stream_spatial"``, ``"tsn_rgb"``, ``"tsn_rgbdiff"``
    (flow recipes come from ``vidnets.flow.datasets``; ``vidnets.engine.recipes`` tables them all).
    Overrides: ``frames``, ``stride``, ``size`` (short side, or (H, W)), ``crop``, ``segments``,
    ``views`` (temporal test views), ``crops`` (1, 3 or 10 spatial test crops), ``mean``, ``std``.
    Train datasets give one view; test datasets give ``(V, ...)`` (see each recipe's docstring).

``vidnets.data.synthetic``
    ``generate_dataset(out_dir, *, num_classes, videos_per_class, frames, size, seed, family) -> Path``
    writes class folders of encoded videos plus ``classInd.txt``, ``trainlist01.txt``,
    ``testlist01.txt`` so that ``load_annotations("ucf101", out_dir)`` works. Except in
    ``"appearance"``, classes never differ in per-frame appearance. ``family="motion"`` (default):
    they differ only in motion (up, down,
    sideways, rotate, expand, contract, diagonal up/down) and are unchanged by horizontal flips
    (flip augmentation is safe); ``"mirrored"``: pairs a flip swaps (``MIRROR_PAIRS``; see
    ``data.flip_label_map``); ``"order"``: only the order of two far-apart events differs;
    ``"appearance"``: only the shape and colour of the objects seen (the single-frame recipes' data).

Reusable pieces: ``vidnets.data.video`` (``probe``, ``read_frames``), ``vidnets.data.frames``
(raw-frame folders incl. ``flow_x_``/``x_`` naming), ``vidnets.data.sampling`` (samplers return
``SampledIndices``), ``vidnets.data.transforms`` (clip transforms; on 2-channel flow every flip
negates the x component, including the flipped test crops, and every resize scales the vectors).
"""
