#version 330
// Screen space: maps each screen pixel back into the content through one projective matrix that holds
// fit/fill/stretch, rotation, mirroring and the four-corner pin; then colour, gamma and blackout.
// The monitor view is this program drawn four times, one tile each (renderer.Renderer.present_monitor).
uniform sampler2D u_content;
uniform sampler2D u_camera;     // MIX 1: the layers, mixed here instead of in a composite pass
uniform sampler2D u_mask;
uniform sampler2D u_output;
uniform float u_cam_gain;       // MIX 1: renderer.mix_weights, as in composite.frag
uniform float u_w0;
uniform float u_w1;
uniform mat3 u_screen_to_content;
uniform vec2 u_screen;
uniform float u_gamma;
uniform float u_brightness;
uniform float u_contrast;
uniform float u_saturation;
uniform bool u_blackout;
out vec4 f_color;

// MIX and GRADE are set per program by renderer.ShaderSet (compile-time switches, not uniforms: llvmpipe
// runs every side of a branch, so a switched-off path would still cost its texture reads).
// MIX 1 reads camera, mask and model and mixes them: one pass over the content's screen box instead of a
// composite pass (five texture reads a pixel) and then this one (cost on a 2-core CPU: docs/performance.md).
#ifndef MIX
#define MIX 0
#endif
// GRADE 0 when brightness, contrast, saturation and gamma are all 1: the grade is then the identity,
// and on llvmpipe its pow() alone cost ~4 ms of CPU a frame at 720x720.
#ifndef GRADE
#define GRADE 1
#endif
#include "enlarge.glsl"

void main() {
    if (u_blackout) {
        f_color = vec4(0.0, 0.0, 0.0, 1.0);
        return;
    }
    vec2 s = gl_FragCoord.xy / u_screen;
    s.y = 1.0 - s.y;  // picture convention: top row first
    vec3 p = u_screen_to_content * vec3(s, 1.0);
    vec2 uv = p.xy / p.z;
    if (p.z <= 0.0 || any(lessThan(uv, vec2(0.0))) || any(greaterThan(uv, vec2(1.0)))) {
        f_color = vec4(0.0, 0.0, 0.0, 1.0);
        return;
    }
#if MIX
    vec3 cam = texture(u_camera, uv).rgb;
    float m = texture(u_mask, uv).r;
    vec3 c = mix(cam * u_cam_gain, enlarged(u_output, uv), clamp(u_w0 + u_w1 * m, 0.0, 1.0));
#else
    vec3 c = enlarged(u_content, uv);
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
