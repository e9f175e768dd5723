"""The zoom block's start-up checks and memory estimate, for vwatch.start only (kept out of
vwatch.zoom, whose code stays loaded while the detector runs)."""


def refuse_hop(m):
    raise ValueError("model %s has a zoom block and hop %d > window %d: the zoom block needs "
                     "every sample; refit with --hop at most the window" % (m.model_id, m.hop,
                                                                          m.window))


def need(model, backend):
    # Bytes of the zoom block for vwatch.start's estimate (a model file's path or a loaded
    # model): the low ring 4 C N_z, a scratch, the spectrum's buffers.
    if isinstance(model, str):
        import struct

        with open(model, "rb") as f:
            h = f.read(64)
        c = h[24]
        r, bz, nz = struct.unpack_from("<BBH", h, 52) if h[4] >= 3 else (0, 0, 0)
    else:
        c, r, bz, nz = model.channels, model.zoom_r, model.zoom_bands, model.zoom_window
    if not r:
        return 0
    low = 4 * c * nz + 4 * 128 + 300  # (the zoom edges are the model's, counted in _need)
    if backend == "ulab":  # scratchpad 2 N_z, Hann and turned Hann N_z ulab floats, views
        return low + 32 * nz + 64 * bz + 600
    if backend == "q15":  # z 4 N_z, sine table N_z / 2, sums and logs, parameters
        return low + 5 * nz + 12 * bz + 200
    return low + 5 * nz  # pure: z 4 N_z, sine table N_z
