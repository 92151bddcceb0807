"""An OCI runtime-spec conformance suite that drives any runc-compatible runtime binary."""
