"""LightningModules: classifier, GANMEX generator, autoencoder."""
