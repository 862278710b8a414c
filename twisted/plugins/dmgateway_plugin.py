from twisted.application.service import ServiceMaker

dmgateway = ServiceMaker(
    "dmgateway",
    "dmgateway.tap",
    "OMA DM server gateway (DM-2 over HTTP/HTTPS, notifications, REST API)",
    "dmgateway",
)
