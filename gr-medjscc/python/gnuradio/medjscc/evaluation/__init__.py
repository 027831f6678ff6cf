"""gnuradio.medjscc.evaluation: baselines, sweeps, reports (pure numpy/Pillow; Ray optional).

Modules and their public API:

* ``qam``: ``modulate(bits, "bpsk"|"qpsk"|"16qam"|"64qam"|"256qam")``, ``demodulate_llr(y, mod, noise_var,
  h=None, exact=False)`` (Gray mapping, unit power, LLR = log P0/P1), ``theoretical_ber``.
* ``ldpc``: ``read_alist``/``write_alist``, ``LdpcCode(h)`` with ``encode``, ``decode`` (batched
  normalised min-sum), ``load_code(name)``, ``available_codes()`` (IEEE 802.11n n=648/1944 at
  1/2, 2/3, 3/4, 5/6 from ``codes/``, plus gr-fec's shipped alist codes).
* ``source``: ``J2kCodec``, ``HeifCodec`` (HEVC-intra), ``RoiJ2kCodec``; ``encode(image,
  budget_bytes, mask) -> bytes | None`` gives the largest stream that fits, ``decode(data, shape)``.
* ``linkadapt``: the rate-matched MCS family (``FAMILY``, ``plan(mcs, n_sym)`` with ``encode`` /
  ``decode``: shortening, puncturing, repetition with soft combining over the 802.11n codes),
  measured thresholds (``thresholds()``, ``codes/mcs_thresholds.json``) and ``pick(snr, margin)``.
* ``envelope``: the ``digital-envelope`` method (rule fitted on the validation split,
  ``codes/mcs_rule.json``), ``send_frame``, and the neural side info's frame on the symbol link.
* ``channel``: symbol-level awgn / rayleigh / multipath with per-(image, SNR, trial) seeds shared
  by all methods; ``capacity_bits_per_symbol``.
* ``methods``: ``METHODS``, ``MCS_TABLE``, ``run_point(method, image, mask, name, snrs, cbr,
  channel, link, trial, seed, budget="codec"|"air")`` -> tidy rows (one per MCS for digital
  methods) with ``cbr_total`` (the method's own CBR) and ``cbr_air`` (OFDM: samples on air).
* ``ofdm_link``: ``--link ofdm`` through ``gnuradio.medjscc.phy``.
* ``sweep``: ``SweepSpec``, ``run_sweep(spec, out, backend="local"|"ray", address=None,
  workers=None)`` -> ``SweepResult`` (results.csv, summary.json, plots/), ``aggregate(rows)``
  (per-MCS digital methods: best MCS per SNR on mean ROI-PSNR, an oracle on the swept images;
  ``digital-envelope``: the MCS its rule picked).
* ``plots.make_all(out, points)``, ``report.write_report(results_dir)``.

CLI: ``medjscc sweep ...``, ``medjscc report DIR``.
"""
