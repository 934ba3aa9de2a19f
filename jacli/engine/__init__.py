"""THE only place derivatives are taken.

* ``methods``: the methods each command may run, as enums (pure Python; the CLI reads them).
* ``autodiff``: torch.func and torch.autograd, the output from the same forward pass.
* ``exact``: SymPy's exact derivatives, evaluated on torch.
* ``finite``: central finite differences, the reference that needs no autograd.

Submodules are imported where they are used, so that importing the package costs nothing.
"""
