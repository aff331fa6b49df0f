"""Who may ask: the banks', regulators' and operators' keys and roles."""
