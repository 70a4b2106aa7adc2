"""junit.xml of a parity report: per layer spec a testsuite with one testcase per
quantity, plus `coverage` (declared option values and shape buckets never exercised)
and `run` (failures that belong to no single quantity: the native side raised, a
fixture is missing or corrupt)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from parity.report_tables import percent


def junit(report: dict) -> str:
    """JUnit XML: a testsuite per layer; a testcase per quantity, plus `coverage` and `run`."""
    suites = ET.Element("testsuites", name="nntk-parity")
    total = failures = 0
    for layer in report["layers"]:
        name = f"parity.{layer['layer']}"
        suite = ET.SubElement(suites, "testsuite", name=name)
        props = ET.SubElement(suite, "properties")
        for key in ("source", "profile"):
            ET.SubElement(props, "property", name=key, value=str(report.get(key, "")))
        for key, value in (report.get("versions") or {}).items():
            ET.SubElement(props, "property", name=key, value=str(value))
        cases = fails = 0
        quantity_failed = False
        for q, s in layer["quantities"].items():
            case = ET.SubElement(suite, "testcase", classname=name, name=q, time="0")
            cases += 1
            if s["failures"]:
                fails += 1
                quantity_failed = True
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{s['failures']} of {s['cases']} cases failed; worst "
                    f"{s['worst_location']} ({percent(s['worst_tolerance_used'])} of tolerance)",
                    type="ParityFailure",
                )
                failure.text = f"worst case: {s['worst_case']}\n\n{layer['failure']}"
        coverage = ET.SubElement(suite, "testcase", classname=name, name="coverage", time="0")
        cases += 1
        if layer["coverage"]["never_hit"]:
            fails += 1
            failure = ET.SubElement(
                coverage,
                "failure",
                message=f"never exercised: {layer['coverage']['never_hit']}",
                type="CoverageGap",
            )
            failure.text = json.dumps(layer["coverage"], indent=1)
        run = ET.SubElement(
            suite,
            "testcase",
            classname=name,
            name="run",
            time=f"{float(layer['seconds'] or 0):.3f}",
        )
        cases += 1
        if layer["failure"] and not quantity_failed:
            fails += 1
            failure = ET.SubElement(
                run, "failure", message=layer["failure"].splitlines()[0], type="RunFailure"
            )
            failure.text = layer["failure"]
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
        suite.set("time", f"{float(layer['seconds'] or 0):.3f}")
        total += cases
        failures += fails
    if report["problems"] and not report["layers"]:
        suite = ET.SubElement(suites, "testsuite", name="parity.fixtures", tests="1", failures="1")
        case = ET.SubElement(suite, "testcase", classname="parity.fixtures", name="run", time="0")
        failure = ET.SubElement(case, "failure", message=report["problems"][0], type="RunFailure")
        failure.text = "\n".join(report["problems"])
        total += 1
        failures += 1
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
