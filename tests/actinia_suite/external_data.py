# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Local stand-ins for the external data of actinia's tests (no internet
here), made once into a cache directory and served over HTTP on 127.0.0.1:

* ``elev_ned_30m.tif``: Float32 GeoTIFF, EPSG:3358, the sample project's
  region (n=228500 s=215000 w=630000 e=645000) at 30 m;
* ``geology_30m.tif``: Int32 GeoTIFF, same grid, a few categories;
* ``pointInBonn.json``: a GeoJSON point in Bonn, EPSG:4326.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

REGION = {"n": 228500, "s": 215000, "w": 630000, "e": 645000}
RES = 30
BONN = (7.0982, 50.7374)


def _geotiff(path: Path, dtype_name: str, values) -> None:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    rows, cols = values.shape
    dtype = {"Float32": gdal.GDT_Float32, "Int32": gdal.GDT_Int32}[dtype_name]
    tmp = path.with_suffix(".tmp.tif")
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp), cols, rows, 1, dtype)
    ds.SetGeoTransform((REGION["w"], RES, 0, REGION["n"], 0, -RES))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3358)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.WriteRaster(0, 0, cols, rows, values.tobytes())
    band.FlushCache()
    ds = None
    tmp.rename(path)


def build(directory: Path) -> Path:
    """Make the three files in ``directory`` (once)."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    rows = (REGION["n"] - REGION["s"]) // RES
    cols = (REGION["e"] - REGION["w"]) // RES
    y, x = np.mgrid[0:rows, 0:cols].astype("float64")
    elev = directory / "elev_ned_30m.tif"
    if not elev.exists():
        hills = 100 + 40 * np.sin(x / 37.0) * np.cos(y / 29.0) + 0.05 * y
        _geotiff(elev, "Float32", hills.astype("float32"))
    geology = directory / "geology_30m.tif"
    if not geology.exists():
        cats = 217 + (x // 50 + y // 45).astype("int64") % 12
        _geotiff(geology, "Int32", cats.astype("int32"))
    point = directory / "pointInBonn.json"
    if not point.exists():
        point.write_text(json.dumps({
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {"name": "Bonn"},
                          "geometry": {"type": "Point",
                                       "coordinates": list(BONN)}}]}))
    return directory


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".tif": "image/tiff",
    }

    def log_message(self, *args):
        pass


class DataServer:
    """Serves ``directory`` on 127.0.0.1 (importer: HEAD, then wget)."""

    def __init__(self, directory: Path):
        handler = functools.partial(_Handler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
