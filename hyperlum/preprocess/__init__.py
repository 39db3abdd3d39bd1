"""Before the fit: CL (wavelength to energy, spikes), EELS (ZLP, power law, edges)."""
