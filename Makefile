# KILO.7 developer entry point: `make run` and `make test` set up what they need.
.DEFAULT_GOAL := all
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PKG := ros_ws/src/kilo_core
# Debian packages the two commands need on a fresh machine.
APT_PACKAGES := python3 python3-venv
# Each run gets its own DDS domain unless the caller picks one.
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 200 + 20 )))
# Keep DDS discovery on this machine (kilted and humble spell it differently).
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export ROS_LOCALHOST_ONLY ?= 1
# Fast DDS start-up announcements tuned so processes started together match at once.
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds/kilo7_dev.xml

.PHONY: all system-deps venv lint test test-unit test-ros run clean

all: lint test

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; \
	fi

venv: $(STAMP)

$(STAMP): requirements/dev.txt $(PKG)/setup.py | system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -e $(PKG)
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pytest exits 5 when it collects nothing; an empty selection is a broken suite here.
PYTEST = $(PY) -m pytest $(1) || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest: no tests for $(1)" >&2; exit $$rc; }

# Pure core without ROS, with the branch-coverage gate on kilo_core.core.
test-unit: $(STAMP)
	$(call PYTEST,-m 'not ros' --cov --cov-report=term-missing --cov-fail-under=95)

# Real nodes on real rclpy + Fast DDS.
test-ros: $(STAMP)
	$(call PYTEST,-m ros)

test: lint test-unit test-ros

run: $(STAMP)
	$(PY) -m kilo_core.tools.stack

clean:
	rm -rf $(VENV) .pytest_cache .coverage .hypothesis build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
