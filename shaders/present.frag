#version 330
// Screen space: maps each screen pixel back into the content through one projective matrix that holds
// fit/fill/stretch, rotation, mirroring and the four-corner pin; then colour, gamma and blackout.
uniform sampler2D u_content;
uniform sampler2D u_camera;     // monitor view tiles
uniform sampler2D u_input;
uniform sampler2D u_mask;
uniform sampler2D u_output;
uniform mat3 u_screen_to_content;
uniform vec2 u_screen;
uniform float u_gamma;
uniform float u_brightness;
uniform float u_contrast;
uniform float u_saturation;
uniform bool u_blackout;
out vec4 f_color;

// MONITOR is set per program by render.py's ShaderSet (a compile-time switch, not a uniform: llvmpipe
// would run the monitor's four texture reads for every pixel even with the view off).
#ifndef MONITOR
#define MONITOR 0
#endif
// GRADE 0 when brightness, contrast, saturation and gamma are all 1: the grade is then the identity,
// and on llvmpipe its pow() alone cost ~4 ms of CPU a frame at 720x720.
#ifndef GRADE
#define GRADE 1
#endif

vec3 monitor(vec2 s) {
    vec2 cell = floor(s * 2.0);
    vec2 uv = fract(s * 2.0);
    if (cell.y < 1.0) {
        return cell.x < 1.0 ? texture(u_camera, uv).rgb : texture(u_input, uv).rgb;
    }
    return cell.x < 1.0 ? texture(u_mask, uv).rrr : texture(u_output, uv).rgb;
}

void main() {
    if (u_blackout) {
        f_color = vec4(0.0, 0.0, 0.0, 1.0);
        return;
    }
    vec2 s = gl_FragCoord.xy / u_screen;
    s.y = 1.0 - s.y;  // picture convention: top row first
    vec3 c;
#if MONITOR
    c = monitor(s);
#else
    {
        vec3 p = u_screen_to_content * vec3(s, 1.0);
        vec2 uv = p.xy / p.z;
        if (p.z <= 0.0 || any(lessThan(uv, vec2(0.0))) || any(greaterThan(uv, vec2(1.0)))) {
            f_color = vec4(0.0, 0.0, 0.0, 1.0);
            return;
        }
        c = texture(u_content, uv).rgb;
    }
#endif
#if GRADE
    float luma = dot(c, vec3(0.2126, 0.7152, 0.0722));
    c = mix(vec3(luma), c, u_saturation);
    c = (c - 0.5) * u_contrast + 0.5;
    c = clamp(c * u_brightness, 0.0, 1.0);
    c = pow(c, vec3(1.0 / u_gamma));
#endif
    f_color = vec4(c, 1.0);
}
