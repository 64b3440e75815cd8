"""zenkube's `seldon_local` model deployer: the Seldon serving runtime on 127.0.0.1."""

from integrations.seldon_local.flavor import FLAVOR_NAME, SeldonLocalModelDeployerFlavor

__all__ = ["FLAVOR_NAME", "SeldonLocalModelDeployerFlavor"]
