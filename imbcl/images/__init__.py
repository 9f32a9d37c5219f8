"""Chapter 5's real-image pipeline, one module per concept (each imports only those above it):

* :mod:`~imbcl.images.datasets`: the image sets (digits offline, CIFAR-10 loader/download);
* :mod:`~imbcl.images.splits`: long-tailed pre-training, probe and test splits per seed;
* :mod:`~imbcl.images.augment`: augmentations drawn once per seed, applied to all replicas;
* :mod:`~imbcl.images.config`: validated settings, the methods, bounds between settings;
* :mod:`~imbcl.images.encoder`: tokens, the one-layer Transformer encoder and its head;
* :mod:`~imbcl.images.training`: stacked replicas of every method, pruning masks, AdamW;
* :mod:`~imbcl.images.probe`: linear probes on frozen features (batched L-BFGS);
* :mod:`~imbcl.images.analysis`: evaluation rows, one experiment per call;
* :mod:`~imbcl.images.study`: the chapter's settings, its tasks (one per rho and seed) and
  the per-seed values of its registered claims.
"""
