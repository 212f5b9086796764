"The anomaly detection methods: one module each, registered by being here (see `histo_i2i.detector.METHODS`)."
