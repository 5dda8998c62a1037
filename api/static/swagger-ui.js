// Swagger UI for this service: FastAPI's settings, from a file rather than an inline
// script, so that the page's Content-Security-Policy can forbid inline scripts (api/docs.py).
(function () {
  "use strict";

  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    // Never ask swagger.io to validate the document.
    validatorUrl: null,
  });
})();
