//! The interactive documentation at `/docs`: Swagger UI, vendored into the binary so the page
//! works with no internet.

use utoipa_swagger_ui::SwaggerUi;

pub fn service() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/openapi.json"))
}
