"""ZenML: the model deployer contract, service records, the shared-volume artifact store."""
