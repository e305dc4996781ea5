#version 330
// Content space, square, in picture convention (v = 0 is the top row of every texture).
// Mixes the camera picture, the person mask and the model's picture with the previous composite (trails)
// and the incoming model (crossfade). Without trails or a crossfade the present pass mixes the layers
// itself (present.frag, MIX 1) and this pass is not drawn at all.
uniform sampler2D u_camera;
uniform sampler2D u_mask;
uniform sampler2D u_out_a;      // the model's picture
uniform sampler2D u_out_b;      // the incoming model's picture during a crossfade
uniform sampler2D u_prev;       // last frame's composite (feedback trails)
uniform vec2 u_size;
// the mix as weights, not a branch per mode (llvmpipe runs every side of a branch): renderer.mix_weights
uniform float u_cam_gain;       // 0: black under the model (mix/mode output), 1: the camera
uniform float u_w0;             // the model's weight where the mask is 0 ...
uniform float u_w1;             // ... plus this much where it is 1
uniform float u_crossfade;      // 0: model a, 1: model b
uniform float u_feedback;       // 0: no trails, 0.95: long trails
out vec4 f_color;

#include "enlarge.glsl"

void main() {
    vec2 uv = gl_FragCoord.xy / u_size;
    vec3 cam = texture(u_camera, uv).rgb;
    float m = texture(u_mask, uv).r;
    vec3 model = mix(enlarged(u_out_a, uv), enlarged(u_out_b, uv), u_crossfade);
    vec3 c = mix(cam * u_cam_gain, model, clamp(u_w0 + u_w1 * m, 0.0, 1.0));
    c = mix(c, texture(u_prev, uv).rgb, u_feedback);
    f_color = vec4(c, 1.0);
}
