"""Many runs: sweep spec files, sweeps and their backends (loky, Ray), the regression gate
and the suite files (``suites/*.yaml``)."""
