# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""actinia-resume-plugin: resumable process chains for actinia-core.

Loaded by actinia-core through ``[API] plugins = ["actinia_resume_plugin"]``;
actinia then calls :func:`actinia_resume_plugin.endpoints.create_endpoints`.
"""
