#version 330
// Content space, square, in picture convention (v = 0 is the top row of every texture).
// Mixes the camera picture, the person mask and the model's picture; the previous composite gives trails.
uniform sampler2D u_camera;
uniform sampler2D u_mask;
uniform sampler2D u_out_a;      // the model's picture
uniform sampler2D u_out_b;      // the incoming model's picture during a crossfade
uniform sampler2D u_prev;       // last frame's composite (feedback trails)
uniform vec2 u_size;
uniform int u_mode;             // 0 output, 1 person, 2 background, 3 blend, 4 camera
uniform float u_amount;         // the model's opacity
uniform float u_crossfade;      // 0: model a, 1: model b
uniform float u_feedback;       // 0: no trails, 0.95: long trails
uniform bool u_has_model;
uniform bool u_has_mask;
out vec4 f_color;

void main() {
    vec2 uv = gl_FragCoord.xy / u_size;
    vec3 cam = texture(u_camera, uv).rgb;
    float m = u_has_mask ? clamp(texture(u_mask, uv).r, 0.0, 1.0) : 1.0;
    vec3 model = mix(texture(u_out_a, uv).rgb, texture(u_out_b, uv).rgb, u_crossfade);
    vec3 c;
    if (!u_has_model || u_mode == 4) {
        c = cam;
    } else if (u_mode == 0) {
        c = model * u_amount;
    } else if (u_mode == 1) {
        c = mix(cam, model, m * u_amount);
    } else if (u_mode == 2) {
        c = mix(cam, model, (1.0 - m) * u_amount);
    } else {
        c = mix(cam, model, u_amount);
    }
    c = mix(c, texture(u_prev, uv).rgb, u_feedback);
    f_color = vec4(c, 1.0);
}
