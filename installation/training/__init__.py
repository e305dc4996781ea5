"""The training side: aligned datasets, the pix2pix networks, the trainer and the ONNX exporter.

    dataset.py          build / read aligned input|target pairs (torch-free)
    record.py           record takes from a camera with a countdown
    networks.py         define_G / define_D: U-Net, ResNet, PatchGAN
    pix2pix_convert.py  checkpoints of the well-known pytorch pix2pix code
    config.py           TrainConfig, the recipes, the chain options, arguments -> TrainConfig (no torch)
    rundata.py          the data a run learns from: splits, fixed samples, chain, size
    train.py            the trainer (single process or torchrun DDP), checkpoints
    export.py           checkpoint -> model.onnx + model.toml, checked against PyTorch
    cli.py              the training commands' parser: `dataset`, `export`, `quantize` (and `train`)
    train_cli.py        the `train` command: arguments, run, torchrun's entry

Nothing here is imported by the live show; torch is needed only for train and export.
"""
