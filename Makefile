# KILO.7 developer entry point: `make run` and `make test` set up what they need.
.DEFAULT_GOAL := all
SHELL := /bin/bash

# The ROS 2 distribution of the dev venv: kilted (.venv) or jazzy (.venv-jazzy), from
# PyPI wheels (requirements/ros-$(ROS_DISTRO).txt). A ROS_DISTRO left over from a
# sourced ROS install (humble) has no wheels: say so.
ROS_DISTRO ?= kilted
ROS_REQUIREMENTS := requirements/ros-$(ROS_DISTRO).txt
ifeq ($(wildcard $(ROS_REQUIREMENTS)),)
$(error ROS_DISTRO=$(ROS_DISTRO) has no wheels here: use kilted or jazzy)
endif
VENV := $(if $(filter kilted,$(ROS_DISTRO)),.venv,.venv-$(ROS_DISTRO))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Ansible, molecule, ansible-lint and testinfra: a venv of their own.
ANSIBLE_VENV := .venv-ansible
ANSIBLE_STAMP := $(ANSIBLE_VENV)/.installed
# The robot `make audit` checks, as testinfra spells it (e.g. ssh://kilo@192.168.1.50).
AUDIT_HOST ?=
# paho-mqtt 1.6 (what apt gives the robot), installed beside the venv for the second MQTT run.
PAHO16 := $(VENV)/paho-1.6
PKG := ros_ws/src/kilo_core
# Debian packages the two commands need on a fresh machine.
APT_PACKAGES := python3 python3-venv mosquitto mosquitto-clients stunnel4 openssl gcc libc6-dev \
	openssh-client
# ... to build the .deb (make deb), and to test it in a systemd container (make test-package).
DEB_APT_PACKAGES := debhelper dpkg-dev lintian python3-setuptools systemd
CONTAINER_APT_PACKAGES := podman runc debootstrap
DEB_VERSION := $(shell sed -n '1s/^kilo7 (\(.*\)).*/\1/p' packaging/debian/changelog)
DEB := dist/kilo7_$(DEB_VERSION)_all.deb
DEB_BUILD := build/deb/kilo7-$(DEB_VERSION)
# Each run gets its own DDS domain unless the caller picks one.
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 200 + 20 )))
# Keep DDS discovery on this machine (kilted and humble spell it differently).
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export ROS_LOCALHOST_ONLY ?= 1
# Fast DDS start-up announcements tuned so processes started together match at once.
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds/kilo7_dev.xml

.PHONY: all system-deps venv lint test test-unit test-fuzz test-ros test-mqtt test-mqtt-paho16 test-robot-stack \
	test-chaos test-chaos-paho2 test-chaos-paho16 test-slow soak soak-ci deb test-units test-package lint-ansible molecule audit run \
	bench clean web test-ui image test-image

all: lint test

# apt-get install what is missing of $(1), as root or through sudo.
apt_install = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; \
	fi

system-deps:
	@$(call apt_install,$(APT_PACKAGES))

venv: $(STAMP)

$(STAMP): requirements/dev.txt $(ROS_REQUIREMENTS) $(PKG)/setup.py | system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt \
	  -r $(ROS_REQUIREMENTS)
	$(PY) -m pip install -q --disable-pip-version-check -e $(PKG)
	touch $@

$(ANSIBLE_STAMP): requirements/ansible.txt $(PKG)/setup.py | system-deps
	python3 -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/pip install -q --disable-pip-version-check -r requirements/ansible.txt \
	  -e $(PKG)
	touch $@

$(PAHO16)/.installed: requirements/paho-1.6.txt | $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --target $(PAHO16) \
	  -r requirements/paho-1.6.txt
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check . config/web-tls/robot-ca  # a script without .py

# pytest exits 5 when it collects nothing; an empty selection is a broken suite here.
PYTEST = $(PY) -m pytest $(1) || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest: no tests for $(1)" >&2; exit $$rc; }

# Pure core without ROS, with the branch-coverage gate on kilo_core.core.
test-unit: $(STAMP)
	$(call PYTEST,-m 'not ros and not mqtt and not fuzz and not image' --cov --cov-report=term-missing --cov-fail-under=95)

# Real nodes on real rclpy + Fast DDS.
test-ros: $(STAMP)
	$(call PYTEST,-m 'ros and not mqtt')

# Real mosquitto + the four nodes + a paho client as the phone, on paho 2.x ...
test-mqtt: $(STAMP)
	KILO_EXPECT_PAHO=2. $(call PYTEST,-m 'mqtt and not chaos and not soak and not ui')

# ... and again on paho 1.6 (the bridge and the phone both import it).
test-mqtt-paho16: $(PAHO16)/.installed
	PYTHONPATH=$(CURDIR)/$(PAHO16) KILO_EXPECT_PAHO=1.6 $(call PYTEST,-m 'mqtt and not chaos and not soak and not ui')

# The live stack under a hostile phone and injected faults, on paho 2.x and 1.6
# (KILO_CHAOS_SEED repeats a run; KILO_CHAOS_ROUNDS goes through the faults again).
test-chaos: test-chaos-paho2 test-chaos-paho16
test-chaos-paho2: $(STAMP)
	KILO_EXPECT_PAHO=2. $(call PYTEST,-s -m chaos)
test-chaos-paho16: $(PAHO16)/.installed
	PYTHONPATH=$(CURDIR)/$(PAHO16) KILO_EXPECT_PAHO=1.6 $(call PYTEST,-s -m chaos)

# Generated inputs over both request paths; at least 100 000 of them, or it fails.
FUZZ_EXAMPLES ?= 6000
test-fuzz: $(STAMP)
	KILO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(call PYTEST,-m fuzz)

# The robot's stack last: ROS 2 Jazzy with paho-mqtt 1.6, what Ubuntu 24.04's apt gives a
# Raspberry Pi 5: the ROS and MQTT suites again there. With Kilted and paho 2.x before
# it, each distribution and each paho runs both suites once. (Started on Jazzy, only
# paho 1.6 is left to run.)
ifeq ($(ROS_DISTRO),kilted)
test-robot-stack:
	$(MAKE) ROS_DISTRO=jazzy test-ros test-mqtt-paho16
else
test-robot-stack: test-mqtt-paho16
endif

test: lint test-unit test-fuzz test-ros test-mqtt test-units test-robot-stack

# The web remote: its derivation rules under Node's test runner, then the page in
# Debian's chromium (Playwright, a phone's viewport with touch) against the live stack.
UI_STAMP := $(VENV)/.ui-installed
$(UI_STAMP): requirements/ui.txt | $(STAMP)
	@$(call apt_install,chromium libnss3-tools)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/ui.txt
	touch $@

test-ui: $(UI_STAMP) web
	node --test web/test/
	$(call PYTEST,-m ui)

# The slower suites CI runs after `make test` (.ci/run).
test-slow: test-chaos soak-ci

# The stack under a realistic phone for DURATION (1h, 3m, 90s) on paho 2.x: restarts,
# CPU and RSS per process, forwarded and rejected counts, truth gaps, and the invariants
# (a breach fails it). soak/report.md and report.json; KILO_SOAK_SEED picks the seed.
DURATION ?= 1h
soak: $(STAMP)
	KILO_SOAK_DURATION=$(DURATION) KILO_SOAK_REPORT=$(CURDIR)/soak \
	  $(call PYTEST,-s -m soak)

# CI's three minutes of it; the report goes to build/soak/ (not committed).
soak-ci: $(STAMP)
	KILO_SOAK_DURATION=3m KILO_SOAK_REPORT=$(CURDIR)/build/soak \
	  $(call PYTEST,-s -m soak)

# How fast a STOP stops: the real stack, raw-transport baselines in the same run, and
# bench/report.md, report.json, latency.png. Timings are reported, never asserted.
# BENCH_ARGS=--quick: few samples, under a minute.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): requirements/bench.txt | $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/bench.txt
	touch $@

bench: $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# The web remote (web/): its page and one script, web/src bundled by esbuild with MQTT.js
# (both from the npm registry, the versions package-lock.json pins, checked against their
# integrity hashes), in build/web/. Nothing is fetched at run time.
# Node.js and npm from Debian unless the machine already has npm.
WEB_DIST := build/web
WEB_APT_PACKAGES := nodejs npm
web: $(WEB_DIST)/.built
$(WEB_DIST)/.built: web/package.json web/package-lock.json $(wildcard web/src/*)
	@command -v npm >/dev/null || { $(call apt_install,$(WEB_APT_PACKAGES)); }
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(WEB_DIST) && mkdir -p $(WEB_DIST)
	web/node_modules/.bin/esbuild web/src/app.js --bundle --format=iife --platform=browser \
	  --target=es2020 --legal-comments=inline --log-level=warning --outfile=$(WEB_DIST)/app.js
	cp web/src/index.html $(WEB_DIST)/
	touch $@

# The kilo7 .deb from this tree (packaging/debian), lintian-clean or it fails.
deb: web
	@$(call apt_install,$(DEB_APT_PACKAGES))
	rm -rf build/deb && mkdir -p $(DEB_BUILD)/kilo_core dist
	cp -r packaging/debian packaging/files config/mosquitto config/web-tls README.md \
	  docs/SECURITY.md docs/PHONE.md $(DEB_BUILD)/
	mkdir -p $(DEB_BUILD)/web && cp $(WEB_DIST)/index.html $(WEB_DIST)/app.js $(DEB_BUILD)/web/
	tar -C $(PKG) --exclude=./test --exclude='*.egg-info' --exclude=__pycache__ -c . \
	  | tar -C $(DEB_BUILD)/kilo_core -x
	cd $(DEB_BUILD) && dpkg-buildpackage -us -uc -b
	mv build/deb/kilo7_$(DEB_VERSION)_all.deb $(DEB)
	lintian --fail-on error,warning $(DEB)

# The four units as packaged, each at most 2.0 on systemd's exposure scale (0-10).
test-units: deb
	@for unit in $(DEB_BUILD)/debian/kilo7/lib/systemd/system/kilo7-*.service; do \
	  score=$$(systemd-analyze security --offline=true --threshold=20 $$unit) \
	    || { echo "$$score" | tail -1; echo "FAIL: $$unit is above 2.0" >&2; exit 1; }; \
	  echo "$$(basename $$unit): $$(echo "$$score" | tail -1 | sed 's/.*: //')"; \
	done

# The .deb in a Debian bookworm container with systemd as PID 1 (podman + runc).
# The record's field checks there are the audit suite (tests/audit, testinfra).
test-package: deb $(STAMP) $(ANSIBLE_STAMP)
	@$(call apt_install,$(CONTAINER_APT_PACKAGES))
	packaging/test/build-image.sh package > build/test-image.tag
	KILO7_DEB=$(CURDIR)/$(DEB) KILO7_TEST_IMAGE=$$(cat build/test-image.tag) \
	  KILO7_AUDIT_PYTEST=$(CURDIR)/$(ANSIBLE_VENV)/bin/pytest $(call PYTEST,packaging/test)

# The role and the playbook at ansible-lint's production profile; the ROS apt path,
# whose repository is not reachable here, in a dry run.
lint-ansible: $(ANSIBLE_STAMP)
	PATH=$(CURDIR)/$(ANSIBLE_VENV)/bin:$$PATH ansible-lint --profile production \
	  ansible/site.yml ansible/roles/kilo7 tests/role/ros_apt_check.yml
	PATH=$(CURDIR)/$(ANSIBLE_VENV)/bin:$$PATH tests/role/ros-apt-dry-run.sh

# The role end to end on a bare bookworm container with systemd (molecule/default):
# converge, idempotence, then tests/audit as the verifier; and in image-build mode
# in a container with no init, like a chroot (molecule/image). MOLECULE_SCENARIOS=
# '--scenario-name default' runs the first alone (.ci/run does: there make test-image
# applies the role in image mode in a real chroot).
MOLECULE_SCENARIOS ?= --all
molecule: lint-ansible deb
	@$(call apt_install,$(CONTAINER_APT_PACKAGES))
	packaging/test/build-image.sh bare > build/bare-image.tag
	KILO7_BARE_IMAGE=$$(cat build/bare-image.tag) KILO7_DEB=$(CURDIR)/$(DEB) \
	  PATH=$(CURDIR)/$(ANSIBLE_VENV)/bin:$$PATH molecule test $(MOLECULE_SCENARIOS)

# The appliance image (image/build.sh): Debian 12 from Debian's archive with the role
# applied in image mode, a UEFI boot loader and the owner's settings file on its boot
# partition; dist/kilo7-VERSION-ARCH.img and .img.xz. IMAGE_ARCH=arm64: for a Raspberry
# Pi 3 or 4 (and UEFI arm64 machines), built through qemu-user, booted in QEMU's virt
# machine; without ROS 2 (PyPI has no arm64 wheels).
IMAGE_ARCH ?= amd64
IMAGE := dist/kilo7-$(DEB_VERSION)-$(IMAGE_ARCH).img
# The build's output (each step and what it took), kept for test-image's report.
IMAGE_BUILD_LOG := build/image-build.log
IMAGE_APT_PACKAGES_amd64 := qemu-system-x86 ovmf
IMAGE_APT_PACKAGES_arm64 := qemu-system-arm qemu-efi-aarch64 qemu-user-static binfmt-support
IMAGE_APT_PACKAGES := mmdebstrap mtools dosfstools fdisk e2fsprogs xz-utils openssh-client \
	$(IMAGE_APT_PACKAGES_$(IMAGE_ARCH))
image: deb $(ANSIBLE_STAMP)
	@$(call apt_install,$(IMAGE_APT_PACKAGES))
	$$([ "$$(id -u)" = 0 ] || echo sudo) image/build.sh $(IMAGE_ARCH) $(DEB) dist \
	  2> >(tee $(IMAGE_BUILD_LOG) >&2)

# The image booted in QEMU (software emulation): first boot with a settings file, the
# field audit over SSH, the phone driving it once, a reboot and the audit again.
test-image: image $(STAMP)
	KILO7_IMAGE=$(CURDIR)/$(IMAGE) KILO7_IMAGE_ARCH=$(IMAGE_ARCH) \
	  KILO7_IMAGE_BUILD_LOG=$(CURDIR)/$(IMAGE_BUILD_LOG) \
	  KILO7_AUDIT_PYTEST=$(CURDIR)/$(ANSIBLE_VENV)/bin/pytest $(call PYTEST,-m image)

# The same audit against a robot in the field: make audit AUDIT_HOST=ssh://kilo@robot
audit: $(ANSIBLE_STAMP)
	@[ -n "$(AUDIT_HOST)" ] || { echo "set AUDIT_HOST, e.g. ssh://kilo@192.168.1.50" >&2; exit 2; }
	$(ANSIBLE_VENV)/bin/pytest -p no:cacheprovider --hosts=$(AUDIT_HOST) --sudo tests/audit

run: $(STAMP) web
	$(PY) -m kilo_core.tools.stack

clean:
	rm -rf $(VENV) $(ANSIBLE_VENV) .pytest_cache .coverage .hypothesis build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
