"""Hostile model output: each string must render as inert text on every page."""

XSS_CORPUS = [
    "<script>window.__xss=1;alert(1)</script>",
    '<img src=x onerror="window.__xss=2;alert(2)">',
    '<a href="javascript:alert(3)">click</a>',
    '<a href="JAVASCRIPT:alert(4)">CLICK</a>',
    '<svg onload="alert(5)"><circle r="5"/></svg>',
    '<iframe src="https://evil.example/"></iframe><b>bold?</b>',
    "\\href{javascript:alert(6)}{click me} $\\href{https://evil.example}{x}$",
    '"><script>alert(7)</script><div class="',
    "</textarea><script>alert(8)</script>",
    '<img src="https://evil.example/pixel.png">',
    '<a href="https://evil.example/phish">a link</a><b>bold in a chart legend?</b>',
]
