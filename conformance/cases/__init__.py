"""The conformance cases, one module per area of the spec, run in this order."""

from conformance.cases import cgroups, devices, features, filesystem, hooks, lifecycle, namespaces, process, security

MODULES = [lifecycle, filesystem, process, hooks, namespaces, devices, cgroups, security, features]
