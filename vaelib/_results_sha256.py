"""SHA-256 of each committed results file (written by ``experiments/record_results_sha256.py``)."""

RESULTS_SHA256 = {
    "aevb_fig2.csv": "d81b2e3fc33cad239996a782ff93c32184389c589981791ab198c25d4b81e021",
    "aevb_fig2.json": "24667e319fc76d859edc71cdf5064f95419b4d68b84de0670debc5e9b987f835",
    "beta_sweep.csv": "a16cdfe03b32458ffc37b9ded3aeb6964d7df77c7a631c42a81cc916c2422a00",
    "beta_sweep.json": "aa3d9da669eca73ce1c8457299cb170d72578f2fa73090d96a87601c80e643e2",
    "beta_sweep.npz": "b760ddc748669960d2046240c9217dd85d8ab2a5dac249b8254e8ee66a1f18aa",
    "log_likelihood.csv": "a2f7466481b2e4d280f11fa36bf5f49bb7007761f75e37ce16ea41852a575173",
    "log_likelihood.json": "25acbaa0705051729bbd1834035285481a55d3995265fdd1b9bbce4463d0dbd0",
    "manifolds.json": "e178c21d58cfad0af6b706a38de1367c1867d6ecb0d2d22c5f7c8335ffb42cc4",
    "manifolds.npz": "fc43f41ae8c530d7b2417622645c3ed28b4d864323ad5a501eb379682cd4d8b4",
    "reference.keras": "9fd5bb665519120bce47c90320820fb8e040862f3dd7d5e98cb99faff3fa4e90",
}
