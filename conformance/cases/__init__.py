"""The conformance cases, one module per area of the spec, run in this order."""

from conformance.cases import devices, filesystem, hooks, lifecycle, namespaces, process

MODULES = [lifecycle, filesystem, process, hooks, namespaces, devices]
