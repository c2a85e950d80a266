# Convenience wrappers; the scripts work without make.
.PHONY: run test check bench
run:
	scripts/run
test:
	scripts/test
check:
	scripts/check
bench:
	scripts/bootstrap-venv test && .venv/bin/python bench/invoke.py
