"""Networks beyond TSFmicro (tsfmicro/model/network.py), one module each: every module of this
package is imported with tsfmicro.model, so its ``@register_model`` builder is registered
(tsfmicro.model.registry) without a list to keep."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
