"""SHA-256 of each committed results file (written by ``experiments/record_results_sha256.py``)."""

RESULTS_SHA256 = {
    "aevb_fig2.csv": "93a730f660899e853ac7f84f426e31767437ec9cda40cf8aea50509a19a655d1",
    "aevb_fig2.json": "d8f8747f600eade48506c93672bcbb77f5abe6995ab802ba4855dfa9eaf7a201",
    "aevb_fig2_terms.csv": "7e6950854c7374faf8245053c7ee30c5973287be60fbdc5be17b51477a1ad8e5",
    "aevb_fig2_terms.json": "1422ac289203901899d77ebe6c401892f13f693355bff397fb4686cd4a96ad07",
    "aevb_fig3.csv": "d57aa873b5b2a08ba22396ce827c1b893f5987eef4f7bcffa38fc69a9ff5d9fb",
    "aevb_fig3.json": "c4507c7aa7488e33d096992a61589a029d5a20567a55b2a3624bcc963cd552d7",
    "aevb_fig3_final.csv": "dfb812e83a389ee85fe76eb3f11e1da51bbdbd48c837dbc375eed9ff869f696c",
    "aevb_fig3_final.json": "bd787ff44d4e3dcedcfe2523db923e3857695881c214ec5c7eb07bbb70dc9736",
    "aevb_fig3_final.npz": "cf3cb519fa22c499fc0013a4fdf57d1ab786b91bc3a9fe6e829327ab265ab7fe",
    "beta_sweep.csv": "a16cdfe03b32458ffc37b9ded3aeb6964d7df77c7a631c42a81cc916c2422a00",
    "beta_sweep.json": "aa3d9da669eca73ce1c8457299cb170d72578f2fa73090d96a87601c80e643e2",
    "beta_sweep.npz": "b760ddc748669960d2046240c9217dd85d8ab2a5dac249b8254e8ee66a1f18aa",
    "log_likelihood.csv": "a2f7466481b2e4d280f11fa36bf5f49bb7007761f75e37ce16ea41852a575173",
    "log_likelihood.json": "25acbaa0705051729bbd1834035285481a55d3995265fdd1b9bbce4463d0dbd0",
    "manifolds.json": "442b68d5f912cfee0e9c2d5a9d82f21c8a9ac3ed8e8c5f35e576c8f5f8dc77f7",
    "manifolds.npz": "74706ba79644c998f38f24454ab3288ec13db9f083944d1403a3c85422aa0a26",
    "reference.keras": "9fd5bb665519120bce47c90320820fb8e040862f3dd7d5e98cb99faff3fa4e90",
}
