# Convenience aliases; tasks.py is the real entry point (it needs only Python and pip).
.PHONY: demo test bench setup
demo test bench setup:
	python3 tasks.py $@
