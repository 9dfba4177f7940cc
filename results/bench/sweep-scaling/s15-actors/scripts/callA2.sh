#!/usr/bin/env bash
# Session 15, call A2: call B found no .scratch/ray/a (an ignored path not named in carry did not survive to the
# next call), so the first half now goes outside the tree, to /tmp/raywheel, which stays while the machine is warm.
set -u
mkdir -p /tmp/raywheel && cp .scratch/ray/a/ray.part.aa /tmp/raywheel/ && ls -la /tmp/raywheel
