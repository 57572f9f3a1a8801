"""The training core: config, data, model, trainer, checkpoints. It never imports a UI."""
