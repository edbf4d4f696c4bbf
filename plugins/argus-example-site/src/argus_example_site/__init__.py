"""An example Argus site plugin: one server profile and one alert sink."""
