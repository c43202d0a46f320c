"""Plain nn.Modules: classifiers, the StarGAN generator/critic, the autoencoder."""
