"""zenkube's KServe model deployer: an InferenceService on the V2 protocol (see flavor.py)."""
