"""zenkube's `seldon_local` model deployer: the Seldon serving runtime on 127.0.0.1.

The flavor is imported on first use, so the model's front (router/) can use this
package's plain modules without importing ZenML."""

__all__ = ["FLAVOR_NAME", "SeldonLocalModelDeployerFlavor"]


def __getattr__(name: str):
    if name in __all__:
        from integrations.seldon_local import flavor

        return getattr(flavor, name)
    raise AttributeError(name)
